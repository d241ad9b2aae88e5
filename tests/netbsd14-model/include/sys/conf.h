/* model: nothing the LKM glue uses */
