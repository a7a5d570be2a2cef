"""The steps: one module per MLproject entry point, named like it. Steps never import each other."""
