"""The `local` target: the AWS requests executed on this machine, honouring the service contracts."""
