"""AWS without the SDK on the cold path: SigV4 signing and the credential sources laneway reads
itself (environment, container endpoint, IMDSv2). botocore is imported only as the fallback for
sources it does not read (profiles, SSO, web identity)."""
