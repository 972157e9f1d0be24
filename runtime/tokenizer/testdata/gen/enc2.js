const {encode} = require('/tmp/gpt3enc/node_modules/gpt-3-encoder');
const fs = require('fs');
const s = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
fs.writeFileSync(process.argv[3], JSON.stringify(s.map(x => encode(x))));
