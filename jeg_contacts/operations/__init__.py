"""Running the app on a server: `flask doctor`, `flask backup` and `flask restore`, JSON logs
and the /metrics endpoint."""
