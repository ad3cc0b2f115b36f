from migrate.cli.app import main

main(prog_name="bundle-migrate")
