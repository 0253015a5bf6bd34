import sys

from pipeline import interrupts, writer

if writer.looks_single(sys.argv[1:]) and writer.spare_core():
    writer.prestart()  # a single run's writer imports MLflow while Hydra composes the config

from pipeline.app import main

main()  # bad input, failed jobs and interrupts leave by sys.exit inside, with their status
interrupts.quick_exit(0)
