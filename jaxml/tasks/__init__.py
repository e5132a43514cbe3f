"""Tasks: one folder each (``toy``, ``images``, ``clock``, ``imdb_nb``), holding what is particular to it —
its dataset builders, objectives and reports, registered with the library when the package is imported
(``configs/<experiment>.py`` imports its task), its scripts and a README with its result tables.
No generic module of jaxml imports a task."""
