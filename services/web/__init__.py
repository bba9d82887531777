"""The web app for counsellors and the ombudsperson."""
