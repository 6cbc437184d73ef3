//! MySQL / MariaDB store (mysql://, mariadb://) for sessionbank.
