"""HTTP layer: Flask blueprints. The only package that knows about HTTP."""
