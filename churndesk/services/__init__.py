"""Qt-free services over the database and the ML layer; the GUI and the CLI both call these."""
