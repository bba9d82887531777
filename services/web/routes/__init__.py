"""The web app's pages, one router per kind of user (and one for signing in)."""
