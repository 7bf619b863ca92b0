"""Package setup, read from settings.ini (nbdev 2 layout). Differs from nbdev's template: no pkg_resources
(missing from new setuptools in isolated builds) and Python 3.11/3.12 in the classifiers."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
for k in ('version', 'description', 'keywords', 'author', 'author_email', 'license', 'min_python', 'lib_name', 'git_url'):
    assert k in cfg, f'settings.ini is missing {k}'

min_python = cfg['min_python']
py_versions = '3.10 3.11 3.12'.split()
lic = ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
data_requirements = cfg.get('data_requirements', '').split()  # installed with --no-deps by the Makefile
scripts = [s.strip() for s in cfg.get('console_scripts', '').split('\n') if s.strip()]

def _vtuple(v): return tuple(int(x) for x in v.split('.'))

setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])], 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title(), 'License :: ' + lic[1]] +
                ['Programming Language :: Python :: ' + v for v in py_versions if _vtuple(v) >= _vtuple(min_python)],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['steerkit', 'steerkit.*']),
    include_package_data=True,
    package_data={'steerkit': ['data/*.jsonl', 'data/*.json', 'data/organism/*', 'data/organisms/*/*', 'data/cli_demo/*']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': scripts, 'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    version=cfg['version'], description=cfg['description'], keywords=cfg['keywords'],
    author=cfg['author'], author_email=cfg['author_email'],
)
