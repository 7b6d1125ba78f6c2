from edgepick.cli import main

main()
