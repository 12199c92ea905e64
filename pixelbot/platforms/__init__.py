"""Platform adapters: the only code that knows a platform's library or protocol."""
