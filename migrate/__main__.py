from migrate.cli.app import main

if __name__ == "__main__":  # not when a worker process imports it (multiprocessing spawn)
    main(prog_name="bundle-migrate")
