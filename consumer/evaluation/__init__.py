"""Research code: the recall harness and the detector ceiling study."""
