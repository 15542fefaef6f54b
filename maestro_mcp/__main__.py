from maestro_mcp.cli import main

main()
