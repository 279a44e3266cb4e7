"""Run the appliance CLI: python -m appliance <command>."""

from appliance.cli import main

raise SystemExit(main())
