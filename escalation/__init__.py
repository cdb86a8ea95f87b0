"""When a lead is due: pure ``ladder`` (what is due when) and, later, the working calendar."""
