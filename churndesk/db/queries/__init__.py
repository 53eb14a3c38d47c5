"""Read-side Core SELECTs (cosmicpython's views): plain tuples and arrays, never ORM objects."""
