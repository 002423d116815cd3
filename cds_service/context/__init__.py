"""The chart around the labs: clinical settings, drugs, respiratory support, allergies."""
