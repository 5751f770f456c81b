"""`python -m gankit ...`: the same as the `gankit` command. torchrun starts its workers
this way; they end without Python's teardown (`gankit.training.distributed.end_worker`)."""
import os
import sys

from gankit.cli.main import main

code = main()
if "TORCHELASTIC_RUN_ID" in os.environ or "WORLD_SIZE" in os.environ:  # a torchrun worker
    from gankit.training.distributed import end_worker
    end_worker(code)
sys.exit(code)
