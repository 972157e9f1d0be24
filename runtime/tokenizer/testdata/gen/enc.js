const {encode} = require('/tmp/gpt3enc/node_modules/gpt-3-encoder');
const fs = require('fs');
const s = JSON.parse(fs.readFileSync('/tmp/ref/strings.json', 'utf8'));
fs.writeFileSync('/tmp/ref/node_ids.json', JSON.stringify(s.map(x => encode(x))));
