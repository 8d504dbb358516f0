"""A stand-in for gs:// and s3:// in tests: `objstore://bucket/key` paths,
reachable only through Beam's FileSystems and kept in a local folder.

Like a real object store it has no folders (`has_dirs` is False) and every
path it hands out carries its scheme, so a pipeline writing here proves its
output code never touches the local disk directly.
"""
from __future__ import annotations

import os

from apache_beam.io.filesystem import FileMetadata, FileSystem
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "objstore"
PREFIX = f"{SCHEME}://"


class ObjectStore(FileSystem):
    root: str | None = None  # the local folder behind it; set by the test

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def __init__(self, pipeline_options=None):
        super().__init__(pipeline_options)
        self.disk = LocalFileSystem(pipeline_options)

    def _local(self, path: str) -> str:
        if self.root is None or not path.startswith(PREFIX):
            raise ValueError(f"not an {SCHEME} path, or no store opened: {path}")
        return self.disk.join(self.root, path[len(PREFIX):])

    def _remote(self, metadata: FileMetadata) -> FileMetadata:
        key = metadata.path[len(self.root):].lstrip("/")
        return FileMetadata(PREFIX + key, metadata.size_in_bytes, metadata.last_updated_in_seconds)

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *(path.strip("/") for path in paths)])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for metadata in self.disk._list(self._local(dir_or_prefix)):
            yield self._remote(metadata)

    def create(self, path, *args, **kwargs):
        return self.disk.create(self._local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return self.disk.open(self._local(path), *args, **kwargs)

    def copy(self, sources, destinations):
        self.disk.copy([self._local(p) for p in sources], [self._local(p) for p in destinations])

    def rename(self, sources, destinations):
        self.disk.rename([self._local(p) for p in sources], [self._local(p) for p in destinations])

    def exists(self, path):  # objects only: a "folder" exists nowhere, as on GCS and S3
        return self.disk.exists(self._local(path)) and not os.path.isdir(self._local(path))

    def size(self, path):
        return self.disk.size(self._local(path))

    def last_updated(self, path):
        return self.disk.last_updated(self._local(path))

    def checksum(self, path):
        return self.disk.checksum(self._local(path))

    def metadata(self, path):
        return self._remote(self.disk.metadata(self._local(path)))

    def delete(self, paths):
        self.disk.delete([self._local(p) for p in paths])
