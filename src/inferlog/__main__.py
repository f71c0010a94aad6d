from inferlog.cli import main

main()
