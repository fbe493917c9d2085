module zbxconform.invalid/plugins/good

go 1.19

require git.zabbix.com/ap/plugin-support v1.2.2-0.20230123112943-76ee71718c5e
