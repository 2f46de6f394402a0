"""Channel adapters against their fakes: one file per adapter, and the contract they all keep."""
