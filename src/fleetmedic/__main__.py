"""``python -m fleetmedic``: the same entry point as the ``fleetmedic`` console script."""

from fleetmedic.cli import main

if __name__ == "__main__":
    main()
