from tripwire.cli import app

app(prog_name="tripwire")
