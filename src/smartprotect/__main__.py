from smartprotect.cli import main

main()
