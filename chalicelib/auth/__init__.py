"""Authentication of the data plane: SigV4 verification, accounts and access keys."""
