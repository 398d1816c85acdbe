"""The browser control surface (``affetto serve --ui``): static files, served by engine.server.ui_page."""
