from cuikuan.cli.app import main

main()
