"""Where a library lives on disk: the catalog, the library folder, paths, atomic files, the vector graph."""
