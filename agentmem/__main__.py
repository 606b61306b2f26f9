"""``python -m agentmem``: the same command line as the ``agentmem`` script."""

from agentmem.cli import app

if __name__ == "__main__":
    app(prog_name="agentmem")
