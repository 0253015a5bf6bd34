import sys

from pipeline import writer

if writer.looks_single(sys.argv[1:]) and writer.spare_core():
    writer.prestart()  # a single run's writer imports MLflow while Hydra composes the config

from pipeline.app import main

main()
