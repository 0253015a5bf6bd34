from pipeline.app import main

main()
