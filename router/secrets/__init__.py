"""Config values read from a secret manager (`general_settings.key_management_system`).

Imported only when a config names a manager. With one, `os.environ/NAME` references in the
config are read from the manager (all of them at once, concurrently, when the config is
parsed), falling back to the environment where the manager does not have a name. A `Router`
built from such a config re-reads them every `key_management_settings.refresh_interval`
seconds in the background and swaps in the new values (`Router.reconfigure`).

    base.py     what a manager is, and how a read can fail
    aws.py      AWS Secrets Manager (GetSecretValue, SigV4 over the lean HTTP client)
    gcp.py      Google Cloud Secret Manager (REST, metadata-server token)
    azure.py    Azure Key Vault (REST, managed identity or client credentials)
    vault.py    HashiCorp Vault KV v2 (token or AppRole)
    load.py     which references go to the manager, the one concurrent batch, errors by path
    refresh.py  the background re-read for a running Router
"""
