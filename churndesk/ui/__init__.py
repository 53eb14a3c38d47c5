"""The PySide6 desktop application: windows, panes, table models and charts over the services."""
