"""Who gets a lead: pure policies (``policies``) and the DB service (``service``)."""
