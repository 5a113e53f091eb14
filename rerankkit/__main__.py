"""``python -m rerankkit ...``: the same as the ``rerankkit`` console script."""

from rerankkit.cli import main

raise SystemExit(main())
