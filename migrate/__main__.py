from migrate.cli.app import run

if __name__ == "__main__":  # not when a worker process imports it (multiprocessing spawn)
    run()
