"""spark-submit entry point for population screening: `cytokine-cds screen --engine spark`.

    spark-submit --master spark://HOST:7077 deploy/spark/screen_job.py EXPORT_FOLDER --out FILE

Arguments are those of `cytokine-cds screen`; the session comes from spark-submit.
"""

import sys

from cds_service.cli import main

if __name__ == "__main__":
    sys.exit(main(["screen", *sys.argv[1:], "--engine", "spark"]))
