"""Music emotion recognition (torch-free): features and the recognizer."""
