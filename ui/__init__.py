"""The person's page (and a vendor's): a local web app served by the node at ``/ui/`` of its admin
listener. ``create_ui_app`` builds it from explicit callables (see ui.app); ``UiAuth`` holds its login
tokens and sessions; ``Changes`` is the signal its live stream listens to."""

from ui.app import create_ui_app
from ui.auth import UiAuth
from ui.live import Changes

__all__ = ["Changes", "UiAuth", "create_ui_app"]
