"""mailgate: a car dealership's inquiry mailbox turned into a lead-management system."""

__version__ = "0.1.0"
