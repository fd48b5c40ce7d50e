"""The staff account pages (sign-in, own password, accounts) and `flask users`: a feature
above audit, which records what they change. The accounts themselves live in auth."""
