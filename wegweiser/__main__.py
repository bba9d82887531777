from wegweiser.cli import app

app()
