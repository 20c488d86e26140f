"""A host's files: one `FileSystem` per transport (SSH: SFTP through the pinned ssh; SSM: a
pushed standard-library agent over a port session), pooled per host by `FilesService` and
served by `api/files.py` in the shape of Jupyter's Contents API."""
