"""The appliance runtime: hardware probe, config, storage layout, repairs, model catalogue, launch."""
