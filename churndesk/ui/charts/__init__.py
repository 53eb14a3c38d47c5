"""pyqtgraph charts; each takes plain data from services and nothing else."""
