"""The code index: files, symbols, imports and references of the workspace, kept in the database.

:mod:`.languages` says which language a file is and holds the tree-sitter queries,
:mod:`.extract` turns source into symbols (tree-sitter captures, or patterns where there is no
grammar), :mod:`.build` runs an incremental rebuild under a per-workspace lease,
:mod:`.lookup` answers symbol, reference and definition questions, and :mod:`.tools` offers it
all to the model.
"""
