"""Workers: claim tasks from the database with leases and run the manager on them."""
